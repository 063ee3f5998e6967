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
});
