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
});
