// Damage marks: how `verify` gets the workflow's next backup to repair an image. A scheduled backup
// reports an image whose manifest is in the store as unchanged and copies nothing, so damage below
// an intact manifest (a lost or corrupt layer) would stay. So verify records each damaged image as a
// small object, runs/_status/damaged/<repository>/<digest hex>.json (runs/ is where the stack's roles
// may write, and no delete is needed); the listing turns that image's unchanged item into a repair
// item (withRepairs); the worker copies it again in repair mode (repair.ts, digest-checked, a sound
// object never rewritten) and marks it repaired. A verify that finds the image sound closes it too.
import type { ImageResult, WorkItem } from '../../schema/contract.ts';
import type { ImageEndpoint } from '../model/endpoint.ts';
import { mapLimited } from '../limiter.ts';
import type { BackupStore } from '../store/backup-store.ts';
import type { DamageMark } from '../store/run-files.ts';
import type { VerifyProblem } from '../store/verify.ts';
import type { Copier } from './copy.ts';
import { DamageCheck, repairable, repairImage } from './repair.ts';

const imageId = (image: { repository: string; digest?: string }) => `${image.repository}@${image.digest}`;

/** Marks not repaired yet, of the repositories `within` accepts: one LIST, and a GET per mark of those (repaired marks stay until runs/ expires). */
export async function openDamageMarks(store: BackupStore, within?: (repository: string) => boolean): Promise<DamageMark[]> {
  const marks = await store.runs.readDamageMarks(store.concurrency, within);
  return marks.filter((m) => m.repairedAt === undefined);
}

/**
 * Records a whole-store verify's findings: a mark for each image with damage repair can mend, and
 * every open mark of an image found sound is closed. Returns the images marked.
 */
export async function recordDamage(store: BackupStore, problems: readonly VerifyProblem[], now = new Date()): Promise<number> {
  const found = new Map<string, DamageMark>();
  for (const p of problems.filter(repairable)) {
    const mark = found.get(imageId(p)) ?? { repository: p.repository, digest: p.digest, damaged: [], foundAt: now.toISOString() };
    if (!mark.damaged.includes(p.blob)) mark.damaged.push(p.blob);
    found.set(imageId(p), mark);
  }
  const sound = (await openDamageMarks(store)).filter((m) => !found.has(imageId(m)));
  await mapLimited([...found.values()], store.concurrency, (m) => store.runs.writeDamageMark(m));
  await mapLimited(sound, store.concurrency, (m) => store.runs.writeDamageMark({ ...m, repairedAt: now.toISOString() }));
  return found.size;
}

/** The listing: an unchanged item whose image has an open mark is work again, as a repair. */
export function withRepairs(split: { work: WorkItem[]; unchanged: WorkItem[] }, marks: readonly DamageMark[]) {
  const marked = new Set(marks.map(imageId));
  const repairs = split.unchanged.filter((item) => marked.has(imageId(item)));
  return {
    work: [...split.work, ...repairs.map((item): WorkItem => ({ ...item, repair: true }))],
    unchanged: split.unchanged.filter((item) => !marked.has(imageId(item))),
  };
}

/**
 * The worker: copies a repair item again from `source` in repair mode and closes its mark when that
 * succeeded. Undefined for an item that is not a repair (the caller copies it as usual).
 */
export async function repairMarked(
  store: BackupStore,
  source: ImageEndpoint,
  item: WorkItem,
  copier: Copier,
): Promise<ImageResult | undefined> {
  if (!item.repair || item.digest === undefined) return undefined;
  const mark = await store.runs.readDamageMark(item.repository, item.digest);
  const check = new DamageCheck(store, new Set(mark?.damaged ?? []));
  const result = await repairImage(copier, check, source.repository(item.repository), item.digest);
  if (result.status !== 'failed' && mark) await store.runs.writeDamageMark({ ...mark, repairedAt: store.now().toISOString() });
  return { ...result, ...(item.tag !== undefined ? { tag: item.tag } : {}) };
}
