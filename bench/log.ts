// Progress lines of a bench run, on stderr (stdout carries the markdown report).
export const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
