import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { ConfigError, loadConfig, redactConfig } from '@tally/shared';
import { NotificationConfig } from './notification.config';

describe('NotificationConfig', () => {
  it('has the documented defaults and parses types', () => {
    expect(loadConfig(NotificationConfig, {}).PORT).toBe(3004);
    const config = loadConfig(NotificationConfig, { SMTP_SECURE: 'true', PORT: '4004', WEBHOOK_TIMEOUT_MS: '2500', WEBHOOK_HTTP_ALLOWLIST: '127.0.0.1, hooks.internal', SMTP_PASSWORD: 'pw' });
    expect(config).toMatchObject({
      PORT: 4004, WEBHOOK_TIMEOUT_MS: 2500, DATABASE_SCHEMA: 'notification', LEDGER_EVENTS_TOPIC: 'ledger.events.v1', SMTP_SECURE: true,
      WEBHOOK_HTTP_ALLOWLIST: ['127.0.0.1', 'hooks.internal'], WEBHOOK_MAX_RETRY_HOURS: 24,
    });
    expect(redactConfig(config)).toMatchObject({ SMTP_PASSWORD: '[redacted]' });
  });

  it('refuses to boot on bad values', () => {
    expect(() => loadConfig(NotificationConfig, { SMTP_PORT: '0', WEBHOOK_TIMEOUT_MS: 'soon' })).toThrow(ConfigError);
  });

  it('refuses SMTP_USER without SMTP_PASSWORD, naming it (every email would fail to authenticate, retried for a day)', () => {
    expect(() => loadConfig(NotificationConfig, { SMTP_USER: 'tally' })).toThrow(/SMTP_PASSWORD/);
    expect(() => loadConfig(NotificationConfig, { SMTP_USER: 'tally', SMTP_PASSWORD: '' })).toThrow(/SMTP_PASSWORD/);
    expect(loadConfig(NotificationConfig, { SMTP_USER: 'tally', SMTP_PASSWORD: 'pw' }).SMTP_USER).toBe('tally');
    expect(loadConfig(NotificationConfig, { SMTP_USER: '' }).SMTP_USER).toBe(''); // empty: no authentication, as unset
    expect(loadConfig(NotificationConfig, { SMTP_PASSWORD: '' }).SMTP_PASSWORD).toBe(''); // a key left empty, no user
  });

  it('needs WEBHOOK_SECRET_KEYS in production, checks its shape, redacts it, and falls back to the development key elsewhere', () => {
    const key = Buffer.alloc(32, 1).toString('base64');
    const variables = (env: Record<string, string>): string[] => {
      try {
        loadConfig(NotificationConfig, env);
        return [];
      } catch (error) {
        return (error as ConfigError).problems.map((problem) => problem.variable);
      }
    };
    expect(variables({ NODE_ENV: 'production' })).toEqual(['WEBHOOK_SECRET_KEYS']);
    expect(variables({ WEBHOOK_SECRET_KEYS: 'k1:short' })).toEqual(['WEBHOOK_SECRET_KEYS']);
    const config = loadConfig(NotificationConfig, { NODE_ENV: 'production', WEBHOOK_SECRET_KEYS: `k2:${key}, k1:${key}` });
    expect(config.webhookSecretKeys().map(({ id }) => id)).toEqual(['k2', 'k1']);
    expect(redactConfig(config)).toMatchObject({ WEBHOOK_SECRET_KEYS: '[redacted]' });
    expect(loadConfig(NotificationConfig, {}).webhookSecretKeys().map(({ id }) => id)).toEqual(['development']);
  });

  it('boots with the environment docker-compose.yml gives it (NODE_ENV production: WEBHOOK_SECRET_KEYS is required there)', () => {
    const compose = parse(readFileSync(resolve(__dirname, '../../../../docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, { environment: Record<string, unknown> }> };
    // ${NAME:-default} as compose expands it with NAME unset.
    const env = Object.fromEntries(Object.entries(compose.services.notification.environment).map(([name, value]) => [name, String(value).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]));
    expect(env.NODE_ENV).toBe('production');
    expect(() => loadConfig(NotificationConfig, env)).not.toThrow();
  });
});
