"""The Django stack (import as `stacks.django`; the library itself is `django`)."""
