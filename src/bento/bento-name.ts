import { FerryError } from '../errors/ferry-error.js';
import { describe } from '../registry/model-id.js';

/** BentoML's tag rule for names and versions (bentoml._internal.tag.validate_tag_str). */
const TAG_PART = /^[a-z0-9]([-._a-z0-9]*[a-z0-9])?$/;
const MAX_TAG_PART = 63;

export interface BentoTag {
  name: string;
  /** A concrete version, or "latest" when the tag asks for the newest one. */
  version: string;
}

export function isValidTagPart(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_TAG_PART && TAG_PART.test(value);
}

export function assertBentoName(name: unknown, what = 'name'): string {
  if (!isValidTagPart(name)) {
    throw new FerryError('bento.invalid_name', `invalid model ${what} ${describe(name)}`, {
      hint: 'names and versions match [a-z0-9]([-._a-z0-9]*[a-z0-9])?, at most 63 characters',
    });
  }
  return name;
}

/** A stored version: valid, and not the word "latest", which BentoML reserves for the pointer file. */
export function assertBentoVersion(version: unknown): string {
  assertBentoName(version, 'version');
  if (version === 'latest') throw new FerryError('bento.invalid_name', '"latest" is not a valid stored version');
  return version as string;
}

/** `name:version` or `name:latest`; a bare `name` means latest, as in BentoML. */
export function parseBentoTag(tag: string): BentoTag {
  const colon = tag.indexOf(':');
  const name = colon === -1 ? tag : tag.slice(0, colon);
  const version = colon === -1 ? 'latest' : tag.slice(colon + 1);
  assertBentoName(name);
  if (version !== 'latest') assertBentoVersion(version);
  return { name, version };
}
