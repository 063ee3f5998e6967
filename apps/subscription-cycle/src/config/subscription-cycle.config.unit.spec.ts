import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, loadConfig } from '@tally/shared';
import { SubscriptionCycleConfig } from './subscription-cycle.config';

describe('SubscriptionCycleConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig(SubscriptionCycleConfig, {});
    expect(config).toMatchObject({
      PORT: 3003,
      DATABASE_SCHEMA: 'subscription',
      PLANS_PATH: 'config/plans.yaml',
      SUBSCRIPTION_EVENTS_TOPIC: 'subscription.events.v1',
      SCHEDULER_BATCH: 50,
    });
  });

  // `kubectl apply -k deploy/k8s` starts the services with the topic Job: a subscription-cycle up first created its
  // topic with 3 partitions and the broker's default replication (1 on a stock broker), and the Job, which creates
  // only missing topics, left it so. It creates it as the Job does.
  it('creates its topic with the partitions and replication of the deploy topic Job', () => {
    const deploy = (file: string) => readFileSync(resolve(__dirname, '../../../../deploy/k8s', file), 'utf8');
    const job = deploy('kafka-topics-job.yaml');
    const jobValue = (name: string) => Number(new RegExp(`- name: ${name}\\s+value: "(\\d+)"`).exec(job)?.[1]);
    const configMap = deploy('configmap.yaml');
    const mapped = Number(/SUBSCRIPTION_EVENTS_REPLICATION_FACTOR: "(\d+)"/.exec(configMap)?.[1]);
    const config = loadConfig(SubscriptionCycleConfig, { SUBSCRIPTION_EVENTS_REPLICATION_FACTOR: String(mapped) });
    expect(jobValue('PARTITIONS')).toBe(6);
    expect(config.SUBSCRIPTION_EVENTS_PARTITIONS).toBe(jobValue('PARTITIONS'));
    expect(config.SUBSCRIPTION_EVENTS_REPLICATION_FACTOR).toBe(jobValue('REPLICATION_FACTOR'));
    expect(loadConfig(SubscriptionCycleConfig, {}).SUBSCRIPTION_EVENTS_REPLICATION_FACTOR).toBe(-1); // the broker's default elsewhere
  });

  it('converts numbers from the environment and refuses bad ones', () => {
    expect(loadConfig(SubscriptionCycleConfig, { SCHEDULER_INTERVAL_MS: '250', PORT: '4000' })).toMatchObject({ SCHEDULER_INTERVAL_MS: 250, PORT: 4000 });
    expect(() => loadConfig(SubscriptionCycleConfig, { SCHEDULER_BATCH: '0' })).toThrow(ConfigError);
    expect(() => loadConfig(SubscriptionCycleConfig, { OUTBOX_INTERVAL_MS: 'soon' })).toThrow(ConfigError);
  });
});
