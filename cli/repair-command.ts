// `verify --repair`: re-copies what verify found missing or corrupt from the source registry, then
// verifies again. Exit 1 when anything is still damaged (the source no longer has it, or a problem
// repair does not handle).
import { repairStore } from '../core/engine/repair.ts';
import type { BackupStore } from '../core/store/backup-store.ts';
import { recordDamage } from '../core/engine/damage-marks.ts';
import type { VerifyProblem } from '../core/store/verify.ts';
import { errorText } from '../core/redact.ts';
import { openRegistry, readPasswordFromStdin, type RegistryOptions } from './endpoints.ts';
import { formatBytes } from './format.ts';

/**
 * Marks the damaged images in the store for the workflow's next backup to repair, and closes the
 * marks of images found sound (core/engine/damage-marks.ts). A store verify cannot write to (read-only
 * credentials) only costs the workflow that hint: a warning, not a failure.
 */
export async function noteDamage(store: BackupStore, problems: readonly VerifyProblem[]): Promise<void> {
  await recordDamage(store, problems).catch((error: unknown) =>
    process.stderr.write(`warning: cannot mark the damaged images for the next scheduled backup: ${errorText(error)}\n`),
  );
}

export async function runRepair(store: BackupStore, options: RegistryOptions & { json?: boolean }): Promise<void> {
  if (options.passwordStdin) options.password = await readPasswordFromStdin();
  const report = await repairStore(store, openRegistry(options));
  await noteDamage(store, report.after.problems);
  const healthy = report.after.problems.length === 0 && report.unrepaired.length === 0;
  if (options.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(
      `before repair: ${report.before.problems.length} problem(s) in ${report.before.checkedBlobs} blob(s), ${formatBytes(report.before.checkedBytes)}`,
    );
    out(`replaced ${report.replaced.length} blob(s)/manifest(s) from the source`);
    for (const u of report.unrepaired) {
      out(`  not repaired: ${u.repository}${u.tags.length ? `:${u.tags.join(',')}` : ''} ${u.digest}: ${u.error}`);
      out(`    damaged in the store: ${u.damaged.join(', ')}`);
    }
    for (const p of report.skipped)
      out(`  not repairable here: ${p.problem}: ${p.repository}:${p.tag ?? p.digest} ${p.blob} (${p.detail})`);
    out(`after repair: ${report.after.problems.length} problem(s)`);
    for (const p of report.after.problems)
      out(`  ${p.problem}: ${p.repository}:${p.tag ?? p.digest} blob ${p.blob}${p.detail ? ` (${p.detail})` : ''}`);
  }
  if (!healthy) process.exitCode = 1;
}
