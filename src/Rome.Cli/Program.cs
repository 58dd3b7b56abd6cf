foreach (var m in typeof(Microsoft.ML.Tokenizers.CodeGenTokenizer).GetMethods().Where(m => m.Name == "Create"))
  Console.WriteLine(string.Join(", ", m.GetParameters().Select(p => p.ParameterType.Name + " " + p.Name)));
