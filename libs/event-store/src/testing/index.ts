export { describeEventStoreContract, type EventStoreContractFactory } from './event-store.contract';
