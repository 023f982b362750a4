// CDK app entry (cdk.json: `npx tsx infra/app.ts`). Configuration: the `ecrBackup` context value.
import { createApp } from './stack.ts';

createApp().app.synth();
