return MicroExpr.Cli.Entry.Main(args);
