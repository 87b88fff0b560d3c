/** The admin REST API (SPEC section 4) over the projections and the log, behind `ADMIN_API_KEY`. */
import { Module } from '@nestjs/common';
import { ProjectionsModule } from '../projections/projections.module.js';
import { AdminController } from './admin.controller.js';

@Module({
  imports: [ProjectionsModule],
  controllers: [AdminController],
})
export class AdminModule {}
