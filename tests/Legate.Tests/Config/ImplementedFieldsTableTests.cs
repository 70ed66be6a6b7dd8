using Legate.Config;
using Legate.Config.Semantic;

namespace Legate.Tests.Config;

public sealed class ImplementedFieldsTableTests
{
    [Fact]
    public void EveryListedMessageAndFieldExistsInTheEnvoyApi()
    {
        foreach (var (type, fields) in ImplementedFields.Table)
        {
            var descriptor = ApiTypes.FindByTypeUrl(ApiTypes.TypeUrlPrefix + type);
            Assert.True(descriptor is not null, $"no message {type}");
            Assert.All(fields, field => Assert.True(descriptor!.FindFieldByName(field) is not null, $"{type} has no field {field}"));
        }
    }
}
