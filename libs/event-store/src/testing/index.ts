export { describeEventStoreContract, type EventStoreContractFactory, type OpenTransaction } from './event-store.contract';
