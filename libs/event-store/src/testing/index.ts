export { deliveredToAnother, describeEventStoreContract, type EventStoreContractFactory, type OpenTransaction } from './event-store-contract.harness';
