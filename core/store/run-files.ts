// The files of runs under `runs/` (their key grammar is `runKeys` in schema/contract.ts, shared with
// the state machine and IAM): batches and results, listing shards, repository notes, reports, and
// the store-wide status files under runs/_status/. Every module reads and writes them here, so a
// key is built in one place and nobody outside core/store reaches the objects beneath the store.
import { BatchRef, DeletedTag, ImageResult, type RepositoryNote, runKeys, type RunReport, WorkBatch } from '../../schema/contract.ts';
import { drillReportKey } from '../../schema/drill.ts';
import { ListingShard, ShardOutcome, ShardRef, shardKeys } from '../../schema/listing-shards.ts';
import { mapLimited } from '../limiter.ts';
import { digestHex } from '../model/digest.ts';
import { NotFoundError, readJson, writeJson, type ObjectStore } from './object-store.ts';

/** A damage mark (core/engine/damage-marks.ts): an image verify found damaged, until it is repaired. */
export interface DamageMark {
  repository: string;
  /** The image (root manifest) digest. */
  digest: string;
  /** The blobs and manifests verify found missing or corrupt. */
  damaged: string[];
  foundAt: string;
  /** When the image was copied again, or a later verify found it sound. */
  repairedAt?: string;
}

export class RunFiles {
  constructor(private readonly objects: ObjectStore) {}

  /** `<store>/runs/<run>/`, for messages that tell a user where a run's files are. */
  whereRun(runId: string): string {
    return `${this.objects.description}/${runKeys.dir(runId)}`;
  }

  /** `<store>/runs/<run>/report.json`, for messages. */
  whereReport(runId: string): string {
    return `${this.objects.description}/${runKeys.report(runId)}`;
  }

  /** True for a store in an S3 bucket, whose run files the workflow's Map ItemReaders read directly. */
  get inBucket(): boolean {
    return this.objects.bucket !== undefined;
  }

  /** The bucket and full key (store prefix included) of the run's batch list, for the copy Map's ItemReader. */
  batchListInBucket(runId: string): { bucket: string; key: string } {
    return this.bucketKey(runKeys.batches(runId));
  }

  /** The bucket and full key of the run's shard list, for the `List shards` Map's ItemReader. */
  shardListInBucket(runId: string): { bucket: string; key: string } {
    return this.bucketKey(shardKeys.list(runId));
  }

  private bucketKey(key: string): { bucket: string; key: string } {
    const { bucket, prefix = '' } = this.objects;
    if (bucket === undefined) throw new Error(`${this.objects.description} is not an S3 bucket: the workflow reads its run files from S3`);
    return { bucket, key: `${prefix}${key}` };
  }

  // ---- batches and results (the listing writes batches, workers results, the summary reads them) ----

  async writeBatch(batch: WorkBatch): Promise<string> {
    const key = runKeys.batch(batch.runId, batch.index);
    await writeJson(this.objects, key, batch);
    return key;
  }

  /** The batch at a key from the run's batch list (or the worker's BATCH_KEY). */
  async readBatch(key: string): Promise<WorkBatch> {
    return WorkBatch.parse(await readJson(this.objects, key));
  }

  /** The JSON array the copy Map's ItemReader reads. */
  async writeBatchList(runId: string, refs: readonly BatchRef[]): Promise<string> {
    await writeJson(this.objects, runKeys.batches(runId), refs);
    return runKeys.batches(runId);
  }

  async readBatchList(runId: string): Promise<BatchRef[]> {
    return BatchRef.array().parse(await readJson(this.objects, runKeys.batches(runId)));
  }

  async writeResult(runId: string, batch: number, item: number, result: ImageResult): Promise<void> {
    await writeJson(this.objects, runKeys.result(runId, batch, item), result);
  }

  async readResult(runId: string, batch: number, item: number): Promise<ImageResult> {
    return ImageResult.parse(await readJson(this.objects, runKeys.result(runId, batch, item)));
  }

  async writeBatchResults(runId: string, batch: number, results: readonly ImageResult[]): Promise<void> {
    await writeJson(this.objects, runKeys.batchResults(runId, batch), results);
  }

  async readBatchResults(runId: string, batch: number): Promise<ImageResult[]> {
    return ImageResult.array().parse(await readJson(this.objects, runKeys.batchResults(runId, batch)));
  }

  // ---- notes and deleted tags ----

  async writeNotes(runId: string, source: number | 'listing' | 'plan', notes: readonly RepositoryNote[]): Promise<void> {
    await writeJson(this.objects, runKeys.notes(runId, source), notes);
  }

  /** The run's notes files, for reading each with readNotes. */
  async notesFiles(runId: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const object of this.objects.list(runKeys.notesDir(runId))) if (object.key.endsWith('.json')) keys.push(object.key);
    return keys;
  }

  /** One notes file (unparsed: the reader decides what a bad file costs). */
  readNotes(key: string): Promise<unknown> {
    return readJson(this.objects, key);
  }

  async writeDeleted(runId: string, deleted: readonly DeletedTag[]): Promise<void> {
    await writeJson(this.objects, runKeys.deleted(runId), deleted);
  }

  async readDeleted(runId: string): Promise<DeletedTag[]> {
    return DeletedTag.array().parse(await readJson(this.objects, runKeys.deleted(runId)));
  }

  // ---- the sharded listing ----

  async writeShard(shard: ListingShard): Promise<string> {
    const key = shardKeys.shard(shard.runId, shard.index);
    await writeJson(this.objects, key, shard);
    return key;
  }

  async readShard(key: string): Promise<ListingShard> {
    return ListingShard.parse(await readJson(this.objects, key));
  }

  /** The JSON array the `List shards` Map's ItemReader reads. */
  async writeShardList(runId: string, refs: readonly ShardRef[]): Promise<string> {
    await writeJson(this.objects, shardKeys.list(runId), refs);
    return shardKeys.list(runId);
  }

  async readShardList(runId: string): Promise<ShardRef[]> {
    return ShardRef.array().parse(await readJson(this.objects, shardKeys.list(runId)));
  }

  async writeShardOutcome(runId: string, outcome: ShardOutcome): Promise<void> {
    await writeJson(this.objects, shardKeys.outcome(runId, outcome.index), outcome);
  }

  async readShardOutcome(runId: string, index: number): Promise<ShardOutcome> {
    return ShardOutcome.parse(await readJson(this.objects, shardKeys.outcome(runId, index)));
  }

  // ---- reports ----

  /** report.json and its Markdown twin (rendered by the caller: core/engine/report.ts). */
  async writeReport(report: RunReport, markdown: string): Promise<{ json: string; markdown: string }> {
    const keys = { json: runKeys.report(report.runId), markdown: runKeys.reportMarkdown(report.runId) };
    await writeJson(this.objects, keys.json, report);
    await this.objects.put(keys.markdown, Buffer.from(markdown, 'utf8'), { contentType: 'text/markdown; charset=utf-8' });
    return keys;
  }

  /** A run's report.json, unparsed (NotFoundError when there is none). */
  readReport(runId: string): Promise<unknown> {
    return readJson(this.objects, runKeys.report(runId));
  }

  /** The run id of the newest report.json (by write time), or undefined when there is none. */
  async latestReportRunId(): Promise<string | undefined> {
    let latest: { runId: string; time: number; key: string } | undefined;
    for await (const object of this.objects.list(runKeys.all)) {
      const runId = runKeys.reportRunId(object.key);
      if (runId === undefined) continue;
      const time = object.lastModified.getTime();
      if (!latest || time > latest.time || (time === latest.time && object.key > latest.key)) latest = { runId, time, key: object.key };
    }
    return latest?.runId;
  }

  async writePruneReport(runId: string, report: object): Promise<string> {
    await writeJson(this.objects, runKeys.prune(runId), report);
    return runKeys.prune(runId);
  }

  async writeDrillReport(drillId: string, report: object): Promise<string> {
    await writeJson(this.objects, drillReportKey(drillId), report);
    return drillReportKey(drillId);
  }

  // ---- store-wide status under runs/_status/ ----

  /** The backup-age file, unparsed (NotFoundError when no backup recorded one yet). */
  readLastBackups(): Promise<unknown> {
    return readJson(this.objects, runKeys.lastBackups);
  }

  async writeLastBackups(last: Record<string, string>): Promise<void> {
    await writeJson(this.objects, runKeys.lastBackups, last);
  }

  /**
   * The damage marks, repaired or not, of the repositories `within` accepts (default: all): one LIST,
   * then `concurrency` GETs in flight, only for marks of those repositories (the key names them).
   */
  async readDamageMarks(concurrency: number, within: (repository: string) => boolean = () => true): Promise<DamageMark[]> {
    const keys: string[] = [];
    for await (const o of this.objects.list(runKeys.damagedDir)) {
      const repository = o.key.slice(runKeys.damagedDir.length, o.key.lastIndexOf('/'));
      if (o.key.endsWith('.json') && within(repository)) keys.push(o.key);
    }
    const marks = await mapLimited(keys, concurrency, (key) => this.readMark(key));
    return marks.filter((m): m is DamageMark => m !== undefined);
  }

  /** The mark of one image, or undefined when there is none. */
  readDamageMark(repository: string, digest: string): Promise<DamageMark | undefined> {
    return this.readMark(runKeys.damaged(repository, digestHex(digest)));
  }

  async writeDamageMark(mark: DamageMark): Promise<void> {
    await writeJson(this.objects, runKeys.damaged(mark.repository, digestHex(mark.digest)), mark);
  }

  private async readMark(key: string): Promise<DamageMark | undefined> {
    try {
      return await readJson<DamageMark>(this.objects, key);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }
}
