// Repository settings records of a backup store: reading the latest (at a point in time) and
// recording new settings only when they changed. BackupStore's settings methods call these.
import { RepositorySettings } from '../../schema/repository-settings.ts';
import { sameRepositorySettings } from '../model/repository-settings.ts';
import {
  compactTime,
  parseCompactTime,
  parseSettingsKey,
  RepositorySettingsRecord,
  settingsHash,
  settingsPrefix,
  settingsRecordKey,
} from './layout.ts';
import { writeJson, type ObjectStore } from './object-store.ts';
import { MAX_RECORD_BYTES, readCapped } from './record.ts';
import { validRepository } from '../model/reference.ts';

/** A repository's settings as last recorded (at or before asOf when given), or undefined when none were. */
export async function readRepositorySettings(
  objects: ObjectStore,
  repository: string,
  asOf?: Date,
): Promise<RepositorySettings | undefined> {
  const latest = await latestSettingsKey(objects, repository, asOf);
  return latest && (await readSettingsRecord(objects, latest.key)).settings;
}

/**
 * Records a repository's settings at `catalog/<repository>/_settings/<time>_<hash>.json`, only when they
 * differ from the latest record (unchanged settings cost one LIST: the key carries their fingerprint). True when written.
 */
export async function writeRepositorySettings(
  objects: ObjectStore,
  repository: string,
  settings: RepositorySettings,
  options: { now: () => Date; runId?: string },
): Promise<boolean> {
  const latest = await latestSettingsKey(objects, repository);
  const parsed = RepositorySettings.parse(settings);
  const hash = settingsHash(parsed);
  // The key's fingerprint answers the common case (unchanged) without reading the record; a
  // different fingerprint may still be the same settings (policies compare as JSON), so read then.
  if (latest?.hash === hash) return false;
  if (latest && sameRepositorySettings((await readSettingsRecord(objects, latest.key)).settings, settings)) return false;
  let time = options.now();
  if (latest) {
    const after = parseCompactTime(latest.time).getTime() + 1;
    if (time.getTime() < after) time = new Date(after);
  }
  const record: RepositorySettingsRecord = {
    repository,
    settings: parsed,
    recordedAt: time.toISOString(),
    ...(options.runId ? { runId: options.runId } : {}),
  };
  await writeJson(objects, settingsRecordKey(repository, compactTime(time), hash), record, { ifAbsent: true });
  return true;
}

/** The latest settings record key (at or before asOf when given). */
async function latestSettingsKey(objects: ObjectStore, repository: string, asOf?: Date) {
  validRepository(repository);
  let latest: { key: string; time: string; hash?: string } | undefined;
  for await (const object of objects.list(settingsPrefix(repository))) {
    const parsed = parseSettingsKey(object.key, repository);
    if (!parsed || (latest && parsed.key <= latest.key)) continue;
    if (asOf && parseCompactTime(parsed.time).getTime() > asOf.getTime()) continue;
    latest = parsed;
  }
  return latest;
}

async function readSettingsRecord(objects: ObjectStore, key: string): Promise<RepositorySettingsRecord> {
  const bytes = await readCapped(objects, key, MAX_RECORD_BYTES);
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new Error(`settings record ${objects.description}/${key} is not valid JSON`);
  }
  const parsed = RepositorySettingsRecord.safeParse(raw);
  if (!parsed.success) throw new Error(`settings record ${objects.description}/${key} is malformed: ${parsed.error.message}`);
  return parsed.data;
}
