import { AsyncResource } from 'node:async_hooks';
import { Body, Controller, HttpCode, Module, Post, ValidationPipe } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { IsString, Matches } from 'class-validator';
import { CommonConfig } from '../src/config/common.config';
import { hashApiKey } from '../src/http/api-keys.config';
import { RequireScope } from '../src/http/api-key.guard';
import { bootstrapHttpApp } from '../src/http/http-app.provider';
import { freePort } from '../src/testing';

const KEY = 'bootstrap-test-key';

class EchoRequest {
  @IsString() @Matches(/^\d+$/) amount!: string;
}

@Controller('v1/echo')
class EchoController {
  @Post()
  @HttpCode(200)
  @RequireScope('grants:write')
  echo(@Body() body: EchoRequest) {
    return { amount: body.amount };
  }
}

@Module({ controllers: [EchoController] })
class EchoModule {}

/** The HTTP platform every service shares (Fastify): body errors and routing answer with our stable codes. */
describe('bootstrapHttpApp over real HTTP', () => {
  let app: NestFastifyApplication;
  let base: string;

  beforeAll(async () => {
    const config = Object.assign(new CommonConfig(), {
      PORT: await freePort(),
      LOG_LEVEL: 'silent',
      DATABASE_SCHEMA: 'unused',
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(KEY), scopes: ['grants:write'] }]),
    });
    app = await bootstrapHttpApp(EchoModule, { service: 'bootstrap-test', title: 'test', config, statusByCode: {}, bodyLimit: '1kb', host: '127.0.0.1' });
    base = `http://127.0.0.1:${config.PORT}`;
  });

  afterAll(() => app?.close());

  const post = (body: string, contentType = 'application/json') =>
    fetch(`${base}/v1/echo`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': contentType }, body });

  it('rejects with the reason a module that cannot be built, rather than ending the process', async () => {
    class Missing {}
    @Controller('v1/needs')
    class NeedsController {
      constructor(readonly missing: Missing) {}
    }
    @Module({ controllers: [NeedsController] })
    class BrokenModule {}
    const config = Object.assign(new CommonConfig(), { PORT: await freePort(), LOG_LEVEL: 'silent', DATABASE_SCHEMA: 'unused', API_KEYS: '[]' });
    await expect(bootstrapHttpApp(BrokenModule, { service: 'bootstrap-test', title: 'test', config, statusByCode: {}, host: '127.0.0.1' }))
      .rejects.toThrow(/can't resolve dependencies of the NeedsController/);
  });

  // TRUST_PROXY as a hop count: the address the nearest proxy saw is the client's, whatever the client wrote before it.
  it('takes the client address from the proxy hop TRUST_PROXY counts: invented X-Forwarded-For entries share its anonymous bucket', async () => {
    const config = Object.assign(new CommonConfig(), {
      PORT: await freePort(), LOG_LEVEL: 'silent', DATABASE_SCHEMA: 'unused', API_KEYS: '[]',
      TRUST_PROXY: '1', RATE_LIMIT_ENABLED: true, RATE_LIMIT_ANONYMOUS_PER_SECOND: 1, RATE_LIMIT_ANONYMOUS_BURST: 2,
    });
    const proxied = await bootstrapHttpApp(EchoModule, { service: 'bootstrap-test', title: 'test', config, statusByCode: {}, host: '127.0.0.1' });
    try {
      const statuses: number[] = [];
      for (const invented of ['203.0.113.1', '203.0.113.2', '203.0.113.3']) {
        // The client wrote `invented`; the proxy (this test, one hop) appended the address it saw, 198.51.100.7.
        const response = await fetch(`http://127.0.0.1:${config.PORT}/v1/echo`, { method: 'POST', headers: { 'x-forwarded-for': `${invented}, 198.51.100.7` } });
        statuses.push(response.status);
      }
      expect(statuses).toEqual([401, 401, 429]);
    } finally {
      await proxied.close();
    }
  });

  it('answers a valid request', async () => {
    const response = await post('{"amount":"12"}');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ amount: '12' });
  });

  it('refuses a body that is not JSON with 400 INVALID_JSON', async () => {
    const response = await post('{"amount":');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'INVALID_JSON' });
  });

  it('refuses a body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const response = await post(JSON.stringify({ amount: '1'.repeat(2_000) }));
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });

  it('refuses a body that is not JSON by type with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const response = await post('amount=12', 'application/x-www-form-urlencoded; charset=utf-8');
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('names the field of a DTO violation', async () => {
    const response = await post('{"amount":"1.5","extra":true}');
    expect(response.status).toBe(400);
    const body = (await response.json()) as { code: string; details: { field: string }[] };
    expect(body.code).toBe('VALIDATION_FAILED');
    expect(body.details.map((d) => d.field).sort()).toEqual(['amount', 'extra']);
  });

  // A DTO is built and checked by @tally/contracts' compiled paths (validateInto, as the Kafka consumers do), with the
  // same field errors; Nest's pipe looked the class's metadata up again on every request (~45 µs of an authorization).
  it('checks a DTO body on the compiled path, not with Nest\'s per-request validation', async () => {
    const validate = jest.spyOn(ValidationPipe.prototype as unknown as { validate: () => unknown }, 'validate');
    try {
      expect((await post('{"amount":"7"}')).status).toBe(200);
      const refused = await post('{"amount":"x"}');
      expect(refused.status).toBe(400);
      expect(await refused.json()).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'amount', reason: 'amount must match /^\\d+$/ regular expression' }] });
      expect(validate).not.toHaveBeenCalled();
    } finally {
      validate.mockRestore();
    }
  });

  // On Node 20 every AsyncResource.bind() call builds two deprecate() wrappers and re-prototypes a function, which
  // drags each request's objects into the old generation (~6 KB a request, scavenges of 6–7 ms instead of 1.5).
  // Fastify up to 5.11 bound its body parser's callback once per request; 5.12 does not (package.json overrides).
  it('parses a request body without AsyncResource.bind', async () => {
    const bind = jest.spyOn(AsyncResource.prototype, 'bind');
    try {
      expect((await post('{"amount":"7"}')).status).toBe(200);
      expect(bind).not.toHaveBeenCalled();
    } finally {
      bind.mockRestore();
    }
  });

  // The services' malformed-request specs send 10,000 levels (a 500 before); this app's body limit is 1 KiB.
  it('refuses JSON nested deeper than 32 levels with 400 naming the depth', async () => {
    const deep = `${'{"a":'.repeat(150)}1${'}'.repeat(150)}`;
    const response = await fetch(`${base}/v1/echo`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: deep });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ reason: 'nests deeper than 32 levels' }] });
  });

  it.each([
    ['a null body', 'null'],
    ['an array body', '[{"amount":"1"}]'],
  ])('refuses %s with 400 naming the root', async (_name, body) => {
    const response = await post(body);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: '(root)' }] });
  });

  it('refuses a NUL byte in a body string with 400 naming the field, without quoting it', async () => {
    const body = await post('{"amount":"1\\u0000secret"}');
    expect(body.status).toBe(400);
    const text = await body.text();
    expect(JSON.parse(text)).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'amount', reason: expect.stringContaining('NUL') }] });
    expect(text).not.toContain('secret');
  });

  it('answers platform errors in the {code, message} shape without echoing the request', async () => {
    const invalid = await post('{"amount":"secret-token');
    expect(await invalid.json()).toEqual({ code: 'INVALID_JSON', message: 'The request body is not valid JSON.' });
    const media = await post('{}', 'application/secret-type');
    expect(await media.json()).toEqual({ code: 'UNSUPPORTED_MEDIA_TYPE', message: 'Send the body as application/json.' });
    const badUrl = await fetch(`${base}/v1/secret%zz`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(badUrl.status).toBe(400);
    expect(await badUrl.json()).toEqual({ code: 'INVALID_URL', message: 'The request URL is not valid (bad percent-encoding).' });
    const missing = await fetch(`${base}/v1/secret-route`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(await missing.json()).toEqual({ code: 'NOT_FOUND', message: 'No such route.' });
  });

  it('answers a header block over 16 KiB with 431 in the {code, message} shape', async () => {
    const response = await fetch(`${base}/v1/echo`, { headers: { 'x-junk': 'h'.repeat(20_000) } });
    expect(response.status).toBe(431);
    expect(await response.json()).toEqual({ code: 'HEADERS_TOO_LARGE', message: 'The request headers are too large.' });
    expect((await post('{"amount":"3"}')).status).toBe(200);
  });

  it('answers 401 without a key, 404 NOT_FOUND for an unknown route, and serves the OpenAPI page', async () => {
    expect((await fetch(`${base}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
    const missing = await fetch(`${base}/v1/nothing-here`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'NOT_FOUND' });
    expect((await fetch(`${base}/docs-json`)).status).toBe(200);
    expect((await fetch(`${base}/docs/`)).status).toBe(200);
  });
});
