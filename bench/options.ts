// The bench's command line: `npm run bench -- [--quick] [--only ...] [--dest s3,dir] [--repeat N] [--out FILE.md]`.
import type { DestinationKind } from './report.ts';

export type BenchOptions = ReturnType<typeof parseArgs>;

export function parseArgs(argv: string[]) {
  const options = {
    quick: false,
    repeat: 0,
    only: undefined as string[] | undefined,
    dest: ['s3', 'dir'] as DestinationKind[],
    out: undefined as string | undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === '--quick') options.quick = true;
    else if (flag === '--only') options.only = value().split(',');
    else if (flag === '--repeat') options.repeat = Number(value());
    else if (flag === '--dest') options.dest = value().split(',') as DestinationKind[];
    else if (flag === '--out') options.out = value();
    else if (flag === '--help' || flag === '-h') usage();
    else usage(`unknown option ${arg}`);
  }
  if (options.repeat === 0) options.repeat = options.quick ? 1 : 3;
  if (!Number.isInteger(options.repeat) || options.repeat < 1 || options.repeat > 20) usage('--repeat takes an integer from 1 to 20');
  for (const d of options.dest) if (d !== 's3' && d !== 'dir') usage(`--dest takes s3 and/or dir, got ${d}`);
  return options;
}

export function usage(error?: string): never {
  if (error) process.stderr.write(`bench: ${error}\n`);
  process.stderr.write(
    'usage: npm run bench -- [--quick] [--only shared-base,unrelated,1gb] [--dest s3,dir] [--repeat N] [--out FILE.md]\n',
  );
  process.exit(error ? 2 : 0);
}
