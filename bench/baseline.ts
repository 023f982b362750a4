// The baseline: the original backup script's pipeline, one tag at a time. Each tag is exported
// with `skopeo copy docker://... docker-archive:FILE` (layers stored uncompressed, the whole image in
// one tar on local disk), the tar is uploaded with `aws s3 cp` (or copied with `cp` for the
// directory destination), then deleted. It has no incremental mode: every run is a full run.
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runMeasured, Sampler } from './measure.ts';

export const AWS_CLI = '/root/.pyenv/shims/aws';

export type Destination = { kind: 's3'; bucket: string; endpoint: string } | { kind: 'dir'; root: string };

export interface BaselineResult {
  wallMs: number;
  /** Time in `skopeo copy` (registry -> tar) and in the upload / cp (tar -> destination). */
  exportMs: number;
  uploadMs: number;
  /** Largest RSS of any one command (skopeo, aws, cp). */
  maxRssBytes: number;
  /** Peak bytes in the script's work dir (the tar plus skopeo's --tmpdir). */
  peakTempBytes: number;
  /** Largest single tar. */
  maxTarBytes: number;
  /** CPU time of all its commands (user + system). */
  cpuMs: number;
}

export async function runBaseline(options: {
  registryHost: string;
  images: readonly { repository: string; tag: string }[];
  destination: Destination;
  /** Destination key / path prefix: s3://bucket/<label>/<repo>/<tag>.tar or DIR/<label>/<repo>/<tag>.tar */
  label: string;
  /** Scratch for the tar files and skopeo's staging; removed afterwards. */
  workDir: string;
  env: NodeJS.ProcessEnv;
}): Promise<BaselineResult> {
  const { workDir } = options;
  const skopeoTmp = join(workDir, 'skopeo-tmp');
  await mkdir(skopeoTmp, { recursive: true });
  const rssFile = join(workDir, '..', `baseline-rss-${process.pid}.txt`);
  const sampler = new Sampler({ dirs: [workDir], intervalMs: 50 }).start();
  const result: BaselineResult = { wallMs: 0, exportMs: 0, uploadMs: 0, maxRssBytes: 0, peakTempBytes: 0, maxTarBytes: 0, cpuMs: 0 };
  const started = performance.now();
  try {
    for (const { repository, tag } of options.images) {
      const tar = join(workDir, `${repository.replaceAll('/', '_')}_${tag}.tar`);
      const exported = await runMeasured(
        'skopeo',
        [
          '--insecure-policy',
          '--tmpdir',
          skopeoTmp,
          'copy',
          '-q',
          '--src-tls-verify=false',
          `docker://${options.registryHost}/${repository}:${tag}`,
          `docker-archive:${tar}`,
        ],
        { env: options.env, sampler, rssFile },
      );
      result.exportMs += exported.wallMs;
      result.cpuMs += exported.cpuMs;
      result.maxRssBytes = Math.max(result.maxRssBytes, exported.maxRssBytes);
      const tarBytes = (await stat(tar)).size;
      result.maxTarBytes = Math.max(result.maxTarBytes, tarBytes);
      sampler.observe(tarBytes);
      const destination = options.destination;
      const uploaded =
        destination.kind === 's3'
          ? await runMeasured(
              AWS_CLI,
              [
                's3',
                'cp',
                tar,
                `s3://${destination.bucket}/${options.label}/${repository}/${tag}.tar`,
                '--endpoint-url',
                destination.endpoint,
                '--only-show-errors',
              ],
              { env: options.env, sampler, rssFile },
            )
          : await (async () => {
              const dir = join(destination.root, options.label, repository);
              await mkdir(dir, { recursive: true });
              return runMeasured('cp', [tar, join(dir, `${tag}.tar`)], { env: options.env, sampler, rssFile });
            })();
      result.uploadMs += uploaded.wallMs;
      result.cpuMs += uploaded.cpuMs;
      result.maxRssBytes = Math.max(result.maxRssBytes, uploaded.maxRssBytes);
      await rm(tar, { force: true });
    }
    result.wallMs = performance.now() - started;
  } finally {
    await sampler.stop();
    result.peakTempBytes = sampler.peakDirBytes;
    await rm(rssFile, { force: true });
    await rm(workDir, { recursive: true, force: true });
  }
  return result;
}
