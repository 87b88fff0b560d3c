import { fileURLToPath } from 'node:url';
import type { NextConfig } from 'next';

// `paywire` is linked from the repository (file:../..), so the build's root is the repository's.
const root = fileURLToPath(new URL('../..', import.meta.url));

const config: NextConfig = {
  outputFileTracingRoot: root,
  turbopack: { root },
};

export default config;
