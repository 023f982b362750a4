// Structured JSON logs, one object per line, for CloudWatch Logs Insights. Callers pass their own
// fields; nothing here reads credentials, and error values are reduced to name and message so a
// request object carrying an Authorization header can never be serialised into a log; the line is
// redacted as a whole (core/redact.ts) in case a message or field echoes a credential.
import { redact } from './redact.ts';

type Level = 'debug' | 'info' | 'warn' | 'error';

export function log(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  const entry: Record<string, unknown> = { level, message, time: new Date().toISOString() };
  for (const [key, value] of Object.entries(fields)) {
    entry[key] = value instanceof Error ? { name: value.name, message: value.message } : value;
  }
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${redact(JSON.stringify(entry))}\n`);
}
