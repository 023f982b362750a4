// Checks applied to every repository name, tag and digest before it goes into a URL, an API call or a
// store key, so a hostile name (`../x`, `a/../../b`, `x?mount=`) is refused instead of reshaping the
// request or escaping the store layout. The grammar is schema/names.ts.
import { InvalidInputError } from '../../schema/contract.ts';
import { isDigest, isRepositoryName, isTag } from '../../schema/names.ts';
import type { Digest } from './digest.ts';

/** A repository name, tag or digest that is not valid OCI grammar; refused before a URL or key is built. */
export class InvalidReferenceError extends InvalidInputError {
  override name = 'InvalidReferenceError';
}

function quote(value: string): string {
  return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}...` : value);
}

export function validRepository(name: string): string {
  if (!isRepositoryName(name))
    throw new InvalidReferenceError(`invalid repository name ${quote(name)} (lowercase [a-z0-9] components separated by . _ __ - or /)`);
  return name;
}

export function validTag(tag: string): string {
  if (!isTag(tag)) throw new InvalidReferenceError(`invalid tag ${quote(tag)} ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})`);
  return tag;
}

export function validDigest(digest: string): Digest {
  if (!isDigest(digest)) throw new InvalidReferenceError(`invalid digest ${quote(digest)} (sha256:<64 hex>)`);
  return digest as Digest;
}
