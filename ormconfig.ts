/**
 * The DataSource the TypeORM CLI uses, e.g. `npx typeorm migration:run -d dist/ormconfig.js` after
 * `npm run build`. It targets `DATABASE_URL`, or the embedded database under `DATA_DIR` when unset.
 */
import { createDataSource } from './src/database/database.js';

export default createDataSource({
  url: process.env.DATABASE_URL,
  dataDir: process.env.DATA_DIR ?? './.paywire',
});
