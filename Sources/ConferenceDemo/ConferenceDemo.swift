// The conference-registration demo.
