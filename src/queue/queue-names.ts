export const QUEUE_NAMES = { pull: 'pull', verify: 'verify', warm: 'warm' } as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

/**
 * BullMQ job and deduplication ids must not contain ':' (its key separator), and FLM tags do.
 * Model ids never contain '@', so this is reversible.
 */
export function encodeModelKey(modelId: string): string {
  return modelId.replace(/:/g, '@');
}

export function decodeModelKey(key: string): string {
  return key.replace(/@/g, ':');
}
