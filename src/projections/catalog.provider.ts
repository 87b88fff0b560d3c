/** The catalog as a Nest provider, loaded (and validated) once at start-up from `CATALOG_FILE`. */
import { loadCatalog } from '../billing/catalog.js';
import { CONFIG, type Config } from '../config/config.js';

export const CATALOG = Symbol('paywire.catalog');

export const catalogProvider = {
  provide: CATALOG,
  inject: [CONFIG],
  useFactory: (config: Config) => loadCatalog(config.catalogFile),
};
