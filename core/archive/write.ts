// Writing a docker-archive into the store: skopeo's tar streamed through optional compression and a
// sha256/size counter straight into the object store, committing nothing when anything fails.
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ExecaError } from 'execa';
import type { ArchiveCompression } from '../../schema/contract.ts';
import type { BackupStore } from '../store/backup-store.ts';
import { DigestingStream } from '../model/digest.ts';
import { compressor, type Codec } from './compression.ts';
import { skopeoCopy, stop, toolError, Workspace } from './skopeo.ts';

/** Streams skopeo's docker-archive output through compression and a counter into `key`. */
export async function writeArchive(options: {
  store: BackupStore;
  key: string;
  compression: ArchiveCompression;
  tmpRoot?: string;
  from: (workspace: Workspace) => Promise<string[]>;
  onBytes?: (count: number) => void;
}): Promise<{ sha256: string; size: number }> {
  const workspace = await Workspace.create(options.tmpRoot);
  let codec: Codec | undefined;
  let skopeo: ReturnType<typeof skopeoCopy> | undefined;
  try {
    skopeo = skopeoCopy(workspace, await options.from(workspace), { stdout: true });
    codec = compressor(options.compression);
    // Hashes and counts what the store receives.
    const measure = new DigestingStream(undefined, options.onBytes);
    const streams: (Readable | Duplex)[] = [skopeo.readable(), ...(codec ? [codec.stream] : []), measure];
    // The outcome is captured at once, so a failure while the store is still reading is never an
    // unhandled rejection; the store sees it as an error on `measure` and commits nothing.
    const flowing = pipeline(streams).then(
      () => undefined,
      (error: unknown) => error,
    );
    try {
      await options.store.putArchive(options.key, measure, contentType(options.compression));
    } catch (error) {
      measure.destroy();
      // skopeo's (or zstd's) failure is the cause when there is one; otherwise the store's error.
      const failure = await flowing;
      throw toolError(failure instanceof ExecaError ? failure : error, 'skopeo copy to docker-archive');
    }
    const failure = await flowing;
    if (failure) throw toolError(failure, 'skopeo copy to docker-archive');
    return { sha256: measure.content.digest(), size: measure.content.size };
  } finally {
    await Promise.all([stop(skopeo), stop(codec?.subprocess)]);
    await workspace.dispose();
  }
}

function contentType(compression: ArchiveCompression): string {
  return compression === 'gzip' ? 'application/gzip' : compression === 'zstd' ? 'application/zstd' : 'application/x-tar';
}
