from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('leads', '0021_rep_active_days'),
    ]

    operations = [
        migrations.AddField(
            model_name='lead',
            name='has_opportunity',
            field=models.BooleanField(db_default=False, default=False, editable=False, verbose_name='opportunity opened'),
        ),
    ]
