// The EventBridge Scheduler schedule that starts a backup run (default: daily at 03:00 UTC; `false`: none).
import { TimeZone } from 'aws-cdk-lib';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { EcrBackupProps } from './props.ts';

export function createBackupSchedule(
  scope: Construct,
  option: EcrBackupProps['schedule'],
  stateMachine: sfn.StateMachine,
): scheduler.Schedule | undefined {
  const schedule = option === undefined ? { expression: 'cron(0 3 * * ? *)', timeZone: 'UTC' } : option;
  if (!schedule) return undefined;
  return new scheduler.Schedule(scope, 'Schedule', {
    description: 'ecr-backup: back up the protected repositories',
    schedule: scheduler.ScheduleExpression.expression(
      normalizeScheduleExpression(schedule.expression),
      TimeZone.of(schedule.timeZone ?? 'UTC'),
    ),
    target: new schedulerTargets.StepFunctionsStartExecution(stateMachine, {
      input: scheduler.ScheduleTargetInput.fromObject({}),
      retryAttempts: 3,
    }),
  });
}

/** `cron(...)`/`rate(...)`/`at(...)` pass through; a bare 6-field cron body is wrapped. */
function normalizeScheduleExpression(expression: string): string {
  const e = expression.trim();
  return /^(cron|rate|at)\(.*\)$/.test(e) ? e : `cron(${e})`;
}
