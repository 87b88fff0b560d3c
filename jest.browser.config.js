/** The browser tests: `npm run test:browser`, which needs Debian's chromium (installed by .ci/run). */
import base from './jest.config.js';

export default { ...base, roots: ['<rootDir>/test/browser'], testMatch: ['**/*.browser.ts'] };
