/**
 * The catalog: which features a price, lookup key, product or checkout plan grants (SPEC section 5),
 * read from `CATALOG_FILE` (JSON or YAML) and validated at start-up so that a typo stops the process with
 * a message naming the bad key instead of silently granting nothing.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const featureMap = z.record(z.string().min(1), z.array(z.string().min(1)));

const schema = z
  .object({
    grantStatuses: z.array(z.string().min(1)).default(['active', 'trialing']),
    prices: featureMap.default({}),
    lookupKeys: featureMap.default({}),
    products: featureMap.default({}),
    plans: featureMap.default({}),
  })
  .strict();

export type Catalog = z.infer<typeof schema>;

export const EMPTY_CATALOG: Catalog = schema.parse({});

export class CatalogError extends Error {
  override name = 'CatalogError';
}

export function parseCatalog(text: string, source: string): Catalog {
  let raw: unknown;
  try {
    raw = source.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new CatalogError(
      `CATALOG_FILE ${source} is not valid ${source.endsWith('.json') ? 'JSON' : 'YAML'}: ${(error as Error).message.split('\n')[0]}`,
    );
  }
  const parsed = schema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new CatalogError(`CATALOG_FILE ${source} is invalid: ${issues.join('; ')}`);
  }
  return parsed.data;
}

export function loadCatalog(file: string | undefined): Catalog {
  if (!file) return EMPTY_CATALOG;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new CatalogError(`CATALOG_FILE ${file} cannot be read`);
  }
  return parseCatalog(text, file);
}
