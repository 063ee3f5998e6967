// Every value any test validates (in this process) is also built by class-transformer and validated by
// class-validator; a difference from libs/contracts' compiled paths fails the test that met it.
require('@tally/contracts').crossCheckCompiledValidation(true);
