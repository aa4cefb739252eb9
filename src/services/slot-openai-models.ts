import type { OpenAIModel } from './model-service.js';
import type { SlotService } from './slot-service.js';

/** A `/v1/models` row for a loaded slot: `model: "primary"` then works as an id. */
export type SlotOpenAIModel = OpenAIModel & { model_id: string | null };

/** Every slot in ready, serving or idle, listed by its name, owned by "ferry", with the model it holds. */
export async function slotOpenAIModels(slots: SlotService): Promise<SlotOpenAIModel[]> {
  return (await slots.list())
    .filter((s) => s.servable)
    .map((s) => ({ id: s.name, object: 'model' as const, created: Math.floor(s.updated_at), owned_by: 'ferry', model_id: s.model_id }));
}
