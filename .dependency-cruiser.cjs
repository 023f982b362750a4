// Layering rules (`npm run lint`): dependencies point one way, applications -> core -> model -> schema.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'schema-is-the-bottom',
      comment: 'schema/ is the contract every layer imports; it imports no project code.',
      severity: 'error',
      from: { path: '^schema/' },
      to: { path: '^(core|worker|lambdas|cli|state-machine|infra|test|bench|scripts)/' },
    },
    {
      name: 'model-imports-only-schema',
      comment: 'core/model is the small core model: it imports schema and nothing else of the project, and no SDK.',
      severity: 'error',
      from: { path: '^core/model/' },
      to: { pathNot: '^(core/model/|schema/)', dependencyTypes: ['local', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'store-and-registry-are-separate-transports',
      comment: 'The store and the registry meet only in the engine, through core/model.',
      severity: 'error',
      from: { path: '^core/store/' },
      to: { path: '^core/registry/' },
    },
    {
      name: 'registry-and-store-are-separate-transports',
      severity: 'error',
      from: { path: '^core/registry/' },
      to: { path: '^core/store/' },
    },
    {
      name: 'store-objects-stay-in-the-store',
      comment: 'The objects beneath a BackupStore are reached only by core/store itself: others use BackupStore and RunFiles methods.',
      severity: 'error',
      from: { pathNot: '^(core/store/|test/)' },
      to: { path: '^core/store/store-objects\\.ts$' },
    },
    {
      name: 'core-imports-no-application',
      comment: 'The core library is imported by the worker, the Lambdas and the CLI, never the other way.',
      severity: 'error',
      from: { path: '^(core|schema)/' },
      to: { path: '^(worker|lambdas|cli|state-machine|infra|test|bench|scripts)/' },
    },
    {
      name: 'no-application-imports-another',
      comment: 'Applications are thin and independent: shared code belongs in core/.',
      severity: 'error',
      from: { path: '^(worker|lambdas|cli)/' },
      to: { path: '^(worker|lambdas|cli|infra|state-machine|test|bench)/', pathNot: '^$1/' },
    },
    {
      name: 'infra-imports-no-runtime-handler',
      comment: 'Synthesis must not load a Lambda handler or the worker (it bundles them by path).',
      severity: 'error',
      from: { path: '^(infra|state-machine)/' },
      to: { path: '^(lambdas|worker|cli)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'production-code-imports-no-test-code',
      severity: 'error',
      from: { path: '^(core|schema|worker|lambdas|cli|state-machine|infra)/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    exclude: { path: '^(node_modules|dist|cdk.out)/' },
  },
};
