import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the files that start nothing (no registry, moto, skopeo, CDK synth or CLI
 * process) and finish in seconds. Everything else is `npm run test:integration`; `npm test` runs both.
 */
const UNIT = [
  'test/contract.test.ts',
  'test/ecr-throttle.test.ts',
  'test/part-size.test.ts',
  'test/readme.test.ts',
  'test/redact.test.ts',
  'test/run-progress.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    setupFiles: ['test/harness/temp-cleanup.ts'],
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        // Builds the CLI bundle once per run; test/harness/cli.ts starts that instead of tsx.
        test: { name: 'integration', include: ['test/**/*.test.ts'], exclude: UNIT, globalSetup: ['test/harness/global-setup.ts'] },
      },
    ],
  },
});
