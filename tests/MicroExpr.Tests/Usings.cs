global using NUnit.Framework;
global using MicroExpr.Tests.Support;
