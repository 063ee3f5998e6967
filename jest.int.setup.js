// Integration and end-to-end specs talk to the real broker and database: allow them a minute each.
jest.setTimeout(60_000);
