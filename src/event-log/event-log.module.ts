/** The append-only log of Stripe events (SPEC section 3): `EventLog` for appending, shared by ingest and
 * the projector, which wakes when it commits. */
import { Module } from '@nestjs/common';
import { SQL, type Sql } from '../database/database.js';
import { EventLog } from './event-log.js';

@Module({
  providers: [{ provide: EventLog, useFactory: (sql: Sql) => new EventLog(sql), inject: [SQL] }],
  exports: [EventLog],
})
export class EventLogModule {}
