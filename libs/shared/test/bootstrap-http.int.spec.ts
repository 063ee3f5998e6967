import { AsyncResource } from 'node:async_hooks';
import { Body, Controller, HttpCode, Module, Post } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { IsString, Matches } from 'class-validator';
import { CommonConfig } from '../src/config/common.config';
import { hashApiKey } from '../src/http/api-keys';
import { RequireScope } from '../src/http/api-key.guard';
import { bootstrapHttpApp } from '../src/http/bootstrap-http';
import { freePort } from '../src/testing';

const KEY = 'bootstrap-test-key';

class EchoRequest {
  @IsString() @Matches(/^\d+$/) amount!: string;
}

@Controller('v1/echo')
class EchoController {
  @Post()
  @HttpCode(200)
  @RequireScope('accounts:write')
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
      API_KEYS: JSON.stringify([{ name: 'writer', sha256: hashApiKey(KEY), scopes: ['accounts:write'] }]),
    });
    app = await bootstrapHttpApp(EchoModule, { service: 'bootstrap-test', title: 'test', config, statusByCode: {}, bodyLimit: '1kb', host: '127.0.0.1' });
    base = `http://127.0.0.1:${config.PORT}`;
  });

  afterAll(() => app?.close());

  const post = (body: string, contentType = 'application/json') =>
    fetch(`${base}/v1/echo`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': contentType }, body });

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

  it('answers 401 without a key, 404 NOT_FOUND for an unknown route, and serves the OpenAPI page', async () => {
    expect((await fetch(`${base}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
    const missing = await fetch(`${base}/v1/nothing-here`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'NOT_FOUND' });
    expect((await fetch(`${base}/docs-json`)).status).toBe(200);
    expect((await fetch(`${base}/docs/`)).status).toBe(200);
  });
});
