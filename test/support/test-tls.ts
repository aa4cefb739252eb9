import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './worker-process.js';

/**
 * A self-signed certificate for localhost, 127.0.0.1 and 127.0.0.2 (the fake Hub's two hosts),
 * valid for a century; for tests only. Child processes trust it through NODE_EXTRA_CA_CERTS.
 */
const DIR = join(REPO_ROOT, 'test/fixtures/tls');
export const TEST_TLS = {
  certPath: join(DIR, 'localhost.crt'),
  cert: readFileSync(join(DIR, 'localhost.crt')),
  key: readFileSync(join(DIR, 'localhost.key')),
};
