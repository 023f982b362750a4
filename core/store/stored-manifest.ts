// Reading a manifest from the store: the one read that restore (BackupStore.readManifest), verify and
// the reference walker (prune, stats) share. The read is capped, the bytes are checked against the
// digest (and size, when known) and parsed; each caller decides what a failure means for it.
import { assertDigest } from '../model/digest.ts';
import { manifestFromBytes, MAX_MANIFEST_BYTES, type Manifest } from '../model/manifest.ts';
import { blobKey } from './layout.ts';
import { NotFoundError, type ObjectStore } from './object-store.ts';
import { readCapped } from './record.ts';

export type StoredManifest =
  | { ok: true; manifest: Manifest }
  /** missing: not in the store; unreadable: the read failed (or the object is over the cap). */
  | { ok: false; problem: 'missing' | 'unreadable'; error: unknown }
  /** The bytes (`size` of them) are not the manifest the descriptor names, or no manifest at all. */
  | { ok: false; problem: 'corrupt'; error: unknown; size: number };

/**
 * Reads the manifest blob a descriptor names. A `mediaType` is a claim checked against the bytes
 * (manifestFromBytes); without one the bytes decide.
 */
export async function readStoredManifest(
  objects: ObjectStore,
  descriptor: { digest: string; size?: number; mediaType?: string },
): Promise<StoredManifest> {
  let bytes: Buffer;
  try {
    bytes = await readCapped(objects, blobKey(descriptor.digest), MAX_MANIFEST_BYTES);
  } catch (error) {
    return { ok: false, problem: error instanceof NotFoundError ? 'missing' : 'unreadable', error };
  }
  try {
    assertDigest(bytes, descriptor);
    const manifest = manifestFromBytes(bytes, {
      digest: descriptor.digest,
      ...(descriptor.mediaType ? { mediaType: descriptor.mediaType } : {}),
    });
    return { ok: true, manifest };
  } catch (error) {
    return { ok: false, problem: 'corrupt', error, size: bytes.byteLength };
  }
}
