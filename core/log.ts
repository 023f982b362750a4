// Structured JSON logs, one object per line, for CloudWatch Logs Insights. Callers pass their own
// fields; nothing here reads credentials, and error values are reduced to name, message and cause
// chain so a request object carrying an Authorization header can never be serialised into a log; the
// line is redacted as a whole (core/redact.ts) in case a message or field echoes a credential.
// LOG_LEVEL sets the lowest level written. The Lambdas route these lines through Powertools Logger
// (`setLogSink`), which adds the request id and cold start.
import { LOG_LEVEL_ENV } from '../schema/environment.ts';
import { redact } from './redact.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogSink = (level: LogLevel, message: string, fields: Record<string, unknown>) => void;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** Causes followed at most this deep (a cause chain can be cyclic). */
const MAX_CAUSES = 5;

const writeLine: LogSink = (level, message, fields) => {
  const entry = { level, message, time: new Date().toISOString(), ...fields };
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${redact(JSON.stringify(entry))}\n`);
};

let sink: LogSink = writeLine;

/** Sends every line to `next` from now on (the Lambdas' Powertools Logger). */
export function setLogSink(next: LogSink): void {
  sink = next;
}

export function log(level: LogLevel, message: string, fields: Record<string, unknown> = {}): void {
  if (RANK[level] < RANK[logThreshold()]) return;
  const entry: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) entry[key] = value instanceof Error ? errorFields(value) : value;
  sink(level, message, entry);
}

/** The LOG_LEVEL setting; unset or not a level: `info`. */
function logThreshold(): LogLevel {
  const value = process.env[LOG_LEVEL_ENV]?.toLowerCase();
  return value !== undefined && value in RANK ? (value as LogLevel) : 'info';
}

/** Name and message of an error and of its causes (only these: an SDK error carries its request). */
function errorFields(error: Error, depth = 0): Record<string, unknown> {
  const cause: unknown = error.cause;
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  if (cause === undefined || depth >= MAX_CAUSES) return fields;
  fields.cause = cause instanceof Error ? errorFields(cause, depth + 1) : String(cause);
  return fields;
}
