"""The experiments layer: specs, the results store, sweeps, executors, curriculum,
diagnostics and reports. It builds on the core (model, tasks, rules, train) and is
never imported by it."""
