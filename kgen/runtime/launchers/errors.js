// What a launcher throws when a kernel cannot compile or run: the harness reports `status` as the result.
export class KernelError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status; // "compile_error" | "runtime_error" | "device_lost"
  }
}
