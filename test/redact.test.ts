import { describe, expect, it } from 'vitest';
import { errorText, redact, redactingErrors } from '../core/redact.ts';

const SECRETS = [
  'AQoDYXdzEJr1K2token/with+slash==',
  'c0ffee1234567890abcdef1234567890abcdef1234567890abcdef1234567890',
  'AKIAIOSFODNN7EXAMPLE',
  'dXNlcjpwYXNzd29yZA==',
  'hunter2-password',
  'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl',
];

describe('redact: the one redaction function for every output', () => {
  it('removes presigned query strings (skopeo echoes ECR layer redirects)', () => {
    const text =
      'reading blob sha256:abc: Get "https://prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com/x/y?X-Amz-Security-Token=' +
      `${SECRETS[0]}&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${SECRETS[2]}%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=${SECRETS[1]}": dial tcp: i/o timeout`;
    const out = redact(text);
    for (const s of SECRETS.slice(0, 3)) expect(out).not.toContain(s);
    expect(out).toContain('prod-us-east-1-starport-layer-bucket'); // the host stays: it says where
    expect(out).toContain('X-Amz-Signature=[REDACTED]');
    expect(out).toContain('dial tcp: i/o timeout');
  });

  it('removes Authorization values, tokens, passwords and URL credentials', () => {
    const cases = [
      `Authorization: Basic ${SECRETS[3]}`,
      `{"authorization":"Bearer ${SECRETS[5]}"}`,
      `token=${SECRETS[5]}&service=registry`,
      `https://admin:${SECRETS[4]}@registry.example.com/v2/`,
      `password: ${SECRETS[4]}`,
      `{"auths":{"r.example":{"auth":"${SECRETS[3]}"}}}`,
      `a bare jwt ${SECRETS[5]} in text`,
      `key ${SECRETS[2]}`,
    ];
    for (const text of cases) {
      const out = redact(text);
      for (const s of SECRETS) expect(out, text).not.toContain(s);
      expect(out).toContain('[REDACTED]');
    }
  });

  it('keeps serialised JSON valid and leaves ordinary error text alone', () => {
    const json = JSON.stringify({ error: `GET https://h/x?X-Amz-Signature=${SECRETS[1]}&a=1 failed`, password: SECRETS[4] });
    expect(() => JSON.parse(redact(json))).not.toThrow();
    const plain = 'docker://127.0.0.1:5000 app:v1: not found (404 MANIFEST_UNKNOWN: manifest unknown); the token server refused';
    expect(redact(plain)).toBe(plain);
  });

  it('errorText and redactingErrors redact what an error carries (an execution failure cause)', async () => {
    expect(errorText(new Error(`x Authorization: Bearer ${SECRETS[5]}`))).not.toContain(SECRETS[5]);
    const handler = redactingErrors(async () => {
      throw new TypeError(`boom https://u:${SECRETS[4]}@h/`);
    });
    const error = await handler().catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).not.toContain(SECRETS[4]);
    expect(error.stack).not.toContain(SECRETS[4]);
  });
});
