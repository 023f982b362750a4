// Setup file of every test project: a test file's temporary directories (harness/process.ts tempDir)
// go when the file is done. Registered first, so it runs after the file's own afterAll (services
// stopped first).
import { afterAll } from 'vitest';
import { removeTempDirs } from './process.ts';

afterAll(removeTempDirs);
