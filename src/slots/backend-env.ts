/**
 * Variables a model server must never see: the Hub token (read by workers only), the API's
 * tokens, and Redis credentials. A backend runs third-party code (llama-server, `flm serve`)
 * and may log or expose its environment.
 */
const SECRET_NAMES = new Set([
  'HF_TOKEN',
  'HUGGING_FACE_HUB_TOKEN',
  'HUGGINGFACE_HUB_TOKEN',
  'HF_API_TOKEN',
  'FERRY_API_TOKEN',
  'REDIS_URL',
  'REDIS_PASSWORD',
  'REDISCLI_AUTH',
]);

/** A URL with a password in it (`redis://:pw@host`, `https://user:pw@host`). */
const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/i;

/**
 * The environment of a backend process: the parent's, minus secrets, plus the slot's own
 * `[server] env` (set by whoever wrote the slot file, so kept as is).
 */
export function backendEnvironment(parent: NodeJS.ProcessEnv, slotEnv: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value === undefined || SECRET_NAMES.has(name.toUpperCase()) || URL_WITH_PASSWORD.test(value)) continue;
    env[name] = value;
  }
  return { ...env, ...slotEnv };
}
