// How to read the bench report's figures: what the baseline and our runs are, and what each column measures.

export function benchNotes(awsWorks: boolean, repeat: number): string[] {
  return [
    "Baseline = the original script's pipeline per tag, sequential: `skopeo copy -q --src-tls-verify=false docker://HOST/REPO:TAG docker-archive:FILE` " +
      '(with `--tmpdir`), then `aws s3 cp FILE s3://BUCKET/<label>/<repo>/<tag>.tar --endpoint-url MOTO` (directory: `cp FILE DIR/<label>/<repo>/<tag>.tar`), then `rm FILE`. ' +
      (awsWorks ? 'The real aws CLI is used.' : 'The aws CLI was NOT usable.') +
      ' It has no incremental mode, so its second run is another full run: "Incremental vs baseline full" divides the baseline full time by our incremental time.',
    'Ours = `node dist/ecr-backup.mjs backup --registry URL --to STORE --repositories GLOB --json` (the bundle `npm run build` makes) as a child process, default `--concurrency 4`; ' +
      'full run into an empty store, then an incremental run into the same store. Wall time includes process start-up; "engine" is the report\'s startedAt→finishedAt.',
    "Unique compressed = the fixtures' unique config + layer blob bytes (each counted once). Stored = every object under the run's S3 prefix / every file under the directory " +
      '(ours: blobs, manifests, catalog records and run reports, after the full run). Baseline tars hold layers uncompressed; the layers are random data, so compressed ≈ uncompressed.',
    'Peak RSS = GNU time %M (ru_maxrss) of the CLI process; for the baseline, the largest of its skopeo / aws / cp processes.',
    "Peak temp disk (ours) = peak size of the CLI's dedicated TMPDIR sampled every 50 ms, " +
      'plus every file the CLI held open for writing outside the directory store (sampled from /proc/<pid>/fd). The directory store writes each blob to STORE/.tmp and renames it into place: that is the final copy, not temp space. ' +
      "Baseline: peak size of its work dir (the tar plus skopeo's --tmpdir).",
    'Everything runs on one machine over loopback: the registry, moto (a single Python process, often the bottleneck for S3 writes), the CLI and the baseline compete for the same cores. ' +
      `Other work on the machine (load average above) adds noise: each time is the run with the median wall time of ${repeat} repetition(s) (baseline and ours alternate), ` +
      'its breakdown and CPU are from that same run; peak RSS and temp disk are the worst of all repetitions; the spread table shows the range.',
    'Not measured here: network latency (everything is loopback), real S3 (moto is a single Python process that costs about as much CPU per byte as our CLI), gzip-compressible layers. ' +
      '`npx tsx bench/profile.ts` breaks a backup of the 1 GB image down further (CPU profile, memory at the RSS peak, upload part size / queue experiments).',
  ];
}
