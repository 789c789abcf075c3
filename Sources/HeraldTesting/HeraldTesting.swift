// The test harness for users of HeraldCQRS.
