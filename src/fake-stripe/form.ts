/**
 * Stripe's request encoding: `application/x-www-form-urlencoded` with bracketed keys
 * (`line_items[0][price]=price_1`, `metadata[userId]=u`, `expand[]=data.customer`), which the SDK sends
 * for every POST and for GET query strings. Written here because it is twenty lines, and the `qs` library
 * it mirrors would be a dependency of a development tool only.
 */
export type FormValue = string | FormValue[] | { [key: string]: FormValue };
export type Form = Record<string, FormValue>;

export function parseForm(encoded: string): Form {
  const root: Form = {};
  for (const [key, value] of new URLSearchParams(encoded)) {
    const path = key.split('[').map((part, index) => (index === 0 ? part : part.replace(/]$/, '')));
    let node: Record<string, FormValue> | FormValue[] = root;
    path.forEach((part, index) => {
      const last = index === path.length - 1;
      const nextIsIndex = !last && /^\d*$/.test(path[index + 1]);
      const slot = Array.isArray(node) && part === '' ? node.length : part;
      const container = node as Record<string | number, FormValue>;
      if (last) {
        container[slot] = value;
        return;
      }
      container[slot] ??= nextIsIndex ? [] : {};
      node = container[slot] as Record<string, FormValue> | FormValue[];
    });
  }
  return root;
}

/** A string field of a parsed form, if it is one. */
export function field(
  form: Form | FormValue | undefined,
  ...path: Array<string | number>
): string | undefined {
  let node: FormValue | undefined = form as FormValue;
  for (const part of path) {
    if (!node || typeof node === 'string') return undefined;
    node = (node as Record<string | number, FormValue>)[part];
  }
  return typeof node === 'string' ? node : undefined;
}

/** A `metadata[…]`-style map of strings. */
export function stringMap(value: FormValue | undefined): Record<string, string> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  return Object.fromEntries(
    Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}
