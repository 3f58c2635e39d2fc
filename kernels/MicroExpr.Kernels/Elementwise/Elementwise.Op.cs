namespace MicroExpr.Kernels;

/// <summary>Element-wise functions y = f(x) (alpha is the exponent of Pow and the factor of Scale/AddScalar).</summary>
public enum UnaryOp { Neg, Exp, Log, Sqrt, Tanh, Sigmoid, Relu, Gelu, Pow, Scale, AddScalar }

/// <summary>Element-wise z = a ∘ b with broadcasting.</summary>
public enum BinaryOp { Add, Sub, Mul, Div }
