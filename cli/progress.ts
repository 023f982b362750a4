// Progress for people: a redrawn status line on a TTY, one line per finished image otherwise. It
// writes to stderr so `--json` output on stdout stays machine-readable.
import type { ImageResult } from '../schema/contract.ts';
import type { ProgressEvent } from '../core/engine/copy.ts';
import { formatBytes } from './format.ts';

export interface Progress {
  onEvent(event: ProgressEvent): void;
  finish(): void;
}

export function createProgress(total: number, options: { quiet: boolean; stream?: NodeJS.WriteStream }): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { onEvent() {}, finish() {} };
  const started = Date.now();
  let done = 0;
  let failed = 0;
  let bytes = 0;
  let lastDraw = 0;
  const line = () => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    return `images ${done}/${total}${failed ? ` (${failed} failed)` : ''}  ${formatBytes(bytes)} copied  ${formatBytes(bytes / seconds)}/s`;
  };
  const draw = (force = false) => {
    if (!stream.isTTY) return;
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    stream.write(`\r\x1b[2K${line()}`);
  };
  const describe = (r: ImageResult) => `${r.targetRepository ?? r.repository}:${r.tag ?? r.digest}`;
  return {
    onEvent(event) {
      if (event.type === 'bytes') bytes += event.count;
      if (event.type === 'image-done') {
        done++;
        const r = event.result;
        if (r.status === 'failed') {
          failed++;
          if (stream.isTTY) stream.write('\r\x1b[2K');
          stream.write(`failed  ${r.error}\n`);
        } else if (!stream.isTTY) {
          stream.write(`${r.status.padEnd(9)} ${describe(r)} ${r.digest ?? ''} (${formatBytes(r.bytesCopied)} copied)\n`);
        }
      }
      draw(event.type === 'image-done');
    },
    finish() {
      if (stream.isTTY) stream.write(`\r\x1b[2K${line()}\n`);
    },
  };
}
