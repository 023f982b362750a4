// Loaded with `node --import` into each local worker process: records the process's AWS calls
// (harness/aws-calls.ts) as JSON lines into ECR_BACKUP_TEST_AWS_CALLS, attributed to the task's role.
import { appendFileSync } from 'node:fs';
import { installCallRecorder, type Component } from './aws-calls.ts';

const file = process.env.ECR_BACKUP_TEST_AWS_CALLS;
const component = process.env.ECR_BACKUP_TEST_COMPONENT as Component | undefined;
if (file && component) installCallRecorder({ component, sink: (call) => appendFileSync(file, `${JSON.stringify(call)}\n`) });
